variable "repositories" {
  description = "ECR repository names, one per image of components/images: aidetect-train (every KFP component, the drift and retrain CronWorkflows), aidetect-serve (the ONNX predictor, also its -cuda tags) and aidetect-explain (the Grad-CAM explainer)."
  type        = list(string)
  default     = ["aidetect-train", "aidetect-serve", "aidetect-explain"]

  validation {
    condition     = length(var.repositories) > 0 && alltrue([for r in var.repositories : can(regex("^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", r))])
    error_message = "repositories must be non-empty lowercase ECR names such as aidetect/serve."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting image layers."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "keep_tagged_images" {
  description = "How many tagged images each repository keeps (older ones expire; deployed versions are recent)."
  type        = number
  default     = 50

  validation {
    condition     = var.keep_tagged_images >= 10
    error_message = "keep_tagged_images must be at least 10 so rollbacks stay possible."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
