variable "cluster_name" {
  description = "EKS cluster the node groups join."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the nodes (kept equal to the control plane's)."
  type        = string

  validation {
    condition     = can(regex("^1\\.(3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be a pinned minor version such as \"1.33\"."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids needs at least one subnet."
  }
}

variable "system_group" {
  description = "The CPU node group for cluster add-ons, MLflow, KFP and Argo (never scales to zero)."
  type = object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = optional(number, 100)
  })

  validation {
    condition     = var.system_group.min_size >= 1 && var.system_group.min_size <= var.system_group.desired_size && var.system_group.desired_size <= var.system_group.max_size
    error_message = "system_group needs 1 <= min_size <= desired_size <= max_size (add-ons must always have somewhere to run)."
  }

  validation {
    condition     = alltrue([for t in var.system_group.instance_types : !can(regex("^(g[0-9]|gr[0-9]|p[0-9])", t))])
    error_message = "system_group must use CPU instance types; GPU instances belong in gpu_groups."
  }
}

variable "gpu_groups" {
  description = <<-EOT
    GPU node groups by name. Each scales from zero (min_size is always 0), carries the
    nvidia.com/gpu=true:NoSchedule taint and the aidetect.io/accelerator=nvidia-gpu label.
    capacity_type SPOT makes it the optional spot group for interruptible training.
  EOT
  type = map(object({
    instance_types = list(string)
    max_size       = number
    gpus_per_node  = number
    capacity_type  = optional(string, "ON_DEMAND")
    ami_type       = optional(string, "AL2023_x86_64_NVIDIA")
    disk_size_gib  = optional(number, 200)
    workload       = optional(string, "inference")
  }))

  validation {
    condition = alltrue(flatten([for g in values(var.gpu_groups) : [
      for t in g.instance_types : can(regex("^(g4dn|g5|g6|g6e|gr6|p4d|p4de|p5|p5e|p5en|p6-b200)\\.[a-z0-9]+$", t))
    ]]))
    error_message = "gpu_groups instance_types must be NVIDIA GPU instance types (g4dn, g5, g6, g6e, gr6, p4d, p4de, p5, p5e, p5en, p6-b200)."
  }

  validation {
    condition     = alltrue([for g in values(var.gpu_groups) : contains(["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"], g.ami_type)])
    error_message = "gpu_groups ami_type must be an NVIDIA-capable EKS AMI type (AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA)."
  }

  validation {
    condition     = alltrue([for g in values(var.gpu_groups) : contains(["ON_DEMAND", "SPOT"], g.capacity_type)])
    error_message = "gpu_groups capacity_type must be ON_DEMAND or SPOT."
  }

  validation {
    condition     = alltrue([for g in values(var.gpu_groups) : g.max_size >= 1 && g.max_size <= 50 && g.gpus_per_node >= 1 && g.gpus_per_node <= 8])
    error_message = "gpu_groups need 1 <= max_size <= 50 and 1 <= gpus_per_node <= 8."
  }

  validation {
    condition     = alltrue([for g in values(var.gpu_groups) : contains(["inference", "training"], g.workload)])
    error_message = "gpu_groups workload must be inference or training."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
