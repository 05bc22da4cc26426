variable "environment" {
  description = "Environment name; also the suffix of every resource name."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "project" {
  description = "Project name prefix of every resource."
  type        = string
  default     = "aidetect"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,15}$", var.project))
    error_message = "project must be 3-16 lowercase letters or digits, starting with a letter."
  }
}

variable "network" {
  description = "VPC layout."
  type = object({
    vpc_cidr             = string
    availability_zones   = list(string)
    private_subnet_cidrs = list(string)
    public_subnet_cidrs  = list(string)
    single_nat_gateway   = bool
  })

  validation {
    condition = (
      length(var.network.private_subnet_cidrs) == length(var.network.availability_zones) &&
      length(var.network.public_subnet_cidrs) == length(var.network.availability_zones)
    )
    error_message = "network needs exactly one private and one public subnet CIDR per availability zone."
  }
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
  description = "Pinned EKS add-on versions (see modules/cluster)."
  type        = map(string)
  default     = {}
}

variable "system_node_group" {
  description = "CPU system node group (see modules/node_groups)."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = optional(number, 100)
  })
}

variable "gpu_node_groups" {
  description = "GPU node groups (see modules/node_groups); each scales from zero."
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
  description = "PostgreSQL sizing and safety settings (see modules/database)."
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

variable "ecr_repositories" {
  description = "ECR repositories to create."
  type        = list(string)
  default     = ["aidetect-train", "aidetect-serve", "aidetect-explain"]
}

variable "extra_model_bucket_arns" {
  description = "Further buckets the predictor may read models from."
  type        = list(string)
  default     = []
}

variable "namespaces" {
  description = "Kubernetes namespaces of the workloads whose service accounts get IRSA roles."
  type = object({
    pipelines = string
    serving   = string
    mlflow    = string
  })
  default = {
    pipelines = "kubeflow"
    serving   = "aidetect-staging"
    mlflow    = "mlflow"
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "serving_hostname" {
  description = "Hostname clients use for the predictor (TLS certificate and gateway host), e.g. detect.staging.example.com."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of serving_hostname."
  type        = string
}
