variable "region" {
  description = "AWS region of the environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as eu-west-1."
  }
}

variable "aws_account_id" {
  description = "The only AWS account this environment may be applied to (guards against the wrong credentials)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be 12 digits."
  }
}

variable "environment" {
  description = "staging or production."
  type        = string
}

variable "network" {
  description = "VPC layout (see modules/network)."
  type = object({
    vpc_cidr             = string
    availability_zones   = list(string)
    private_subnet_cidrs = list(string)
    public_subnet_cidrs  = list(string)
    single_nat_gateway   = bool
  })
}

variable "kubernetes_version" {
  description = "Pinned EKS Kubernetes minor version."
  type        = string
}

variable "cluster_endpoint_public_access" {
  description = "Expose the API endpoint publicly (restricted to cluster_public_access_cidrs)."
  type        = bool
  default     = false
}

variable "cluster_public_access_cidrs" {
  description = "CIDRs allowed to reach a public API endpoint."
  type        = list(string)
  default     = []
}

variable "cluster_admin_principal_arns" {
  description = "IAM principals with cluster-admin access entries."
  type        = list(string)
  default     = []
}

variable "eks_addon_versions" {
  description = "Pinned EKS add-on versions."
  type        = map(string)
  default     = {}
}

variable "system_node_group" {
  description = "CPU system node group."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = optional(number, 100)
  })
}

variable "gpu_node_groups" {
  description = "GPU node groups; each scales from zero."
  type = map(object({
    instance_types = list(string)
    max_size       = number
    gpus_per_node  = number
    capacity_type  = optional(string, "ON_DEMAND")
    ami_type       = optional(string, "AL2023_x86_64_NVIDIA")
    disk_size_gib  = optional(number, 200)
    workload       = optional(string, "inference")
  }))
}

variable "database" {
  description = "PostgreSQL settings."
  type = object({
    engine_version            = string
    instance_class            = string
    allocated_storage_gib     = number
    max_allocated_storage_gib = number
    multi_az                  = bool
    backup_retention_days     = number
    deletion_protection       = bool
  })
}

variable "inference_logs_retention_days" {
  description = "Retention of inference logs in S3."
  type        = number
  default     = 400
}

variable "extra_model_bucket_arns" {
  description = "Further buckets the predictor may read models from."
  type        = list(string)
  default     = []
}

variable "namespaces" {
  description = "Namespaces of the workloads with IRSA roles."
  type = object({
    pipelines = string
    serving   = string
    mlflow    = string
  })
}

variable "serving_hostname" {
  description = "Hostname clients use for the predictor (TLS certificate and gateway host), e.g. detect.staging.example.com."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of serving_hostname."
  type        = string
}
