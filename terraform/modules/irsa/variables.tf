variable "name" {
  description = "IAM role name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "name must be a valid IAM role name (1-64 characters)."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "oidc_issuer" {
  description = "OIDC issuer without scheme (oidc.eks.<region>.amazonaws.com/id/<id>)."
  type        = string

  validation {
    condition     = !startswith(var.oidc_issuer, "https://")
    error_message = "oidc_issuer must not include the https:// scheme (it prefixes the condition keys)."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the one service account allowed to assume the role."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS-1123 label; wildcards are not allowed."
  }
}

variable "service_account" {
  description = "Name of the one service account allowed to assume the role."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a DNS-1123 subdomain; wildcards are not allowed."
  }
}

variable "policy_json" {
  description = "Inline least-privilege policy of the role (null for none)."
  type        = string
  default     = null

  validation {
    condition     = var.attach_inline_policy == (var.policy_json != null)
    error_message = "policy_json must be given exactly when attach_inline_policy is true."
  }
}

variable "attach_inline_policy" {
  description = "Whether policy_json is attached. A literal in the caller, known at plan (policy_json is not)."
  type        = bool
  default     = false
}

variable "managed_policy_arns" {
  description = "AWS-managed policies to attach (only for AWS-maintained controllers such as the EBS CSI driver)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.managed_policy_arns : !can(regex("(AdministratorAccess|PowerUserAccess|IAMFullAccess)$", a))])
    error_message = "managed_policy_arns must not grant administrator, power-user or IAM-full access."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
