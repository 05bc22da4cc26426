variable "name_prefix" {
  description = "Bucket name prefix, globally unique in practice (e.g. aidetect-staging-123456789012)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,40}$", var.name_prefix))
    error_message = "name_prefix must be 3-41 lowercase letters, digits or dashes (S3 bucket naming)."
  }
}

variable "kms_key_arn" {
  description = "KMS key for default bucket encryption (SSE-KMS)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "datasets_ia_after_days" {
  description = "Move dataset objects to STANDARD_IA after this many days (dataset versions are immutable, rarely re-read)."
  type        = number
  default     = 60

  validation {
    condition     = var.datasets_ia_after_days >= 30
    error_message = "datasets_ia_after_days must be at least 30 (S3 minimum for STANDARD_IA transitions)."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Keep overwritten or deleted object versions this long before they expire."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && var.noncurrent_version_retention_days <= 3650
    error_message = "noncurrent_version_retention_days must be between 1 and 3650."
  }
}

variable "inference_logs_retention_days" {
  description = "Delete inference-log objects after this many days (they hold per-request features and scores)."
  type        = number
  default     = 400

  validation {
    condition     = var.inference_logs_retention_days >= 120 && var.inference_logs_retention_days <= 3650
    error_message = "inference_logs_retention_days must be between 120 (after the Glacier IR transition at 90) and 3650."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
