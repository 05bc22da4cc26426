variable "name_prefix" {
  description = "Prefix of every role name (e.g. aidetect-staging)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "cluster_name" {
  description = "EKS cluster name (scopes the autoscaler's write actions to this cluster's node groups)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "OIDC issuer without scheme."
  type        = string
}

variable "bucket_arns" {
  description = "Bucket ARNs by purpose (datasets, artifacts, inference-logs) from the storage module."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["datasets", "artifacts", "inference-logs"] : contains(keys(var.bucket_arns), k)])
    error_message = "bucket_arns must contain datasets, artifacts and inference-logs."
  }
}

variable "extra_model_bucket_arns" {
  description = "Further buckets the predictor may read models from (e.g. the registry env's artifacts bucket)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.extra_model_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]+$", a))])
    error_message = "extra_model_bucket_arns must be bucket ARNs (no wildcards, no object paths)."
  }
}

variable "kms_key_arn" {
  description = "KMS key the buckets are encrypted with."
  type        = string
}

variable "service_accounts" {
  description = "namespace and name of each workload's service account (what the trust policies pin)."
  type        = map(object({ namespace = string, name = string }))

  validation {
    condition     = setequal(keys(var.service_accounts), ["pipelines", "predictor", "mlflow", "monitoring", "cluster_autoscaler", "ebs_csi"])
    error_message = "service_accounts needs exactly: pipelines, predictor, mlflow, monitoring, cluster_autoscaler, ebs_csi."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
