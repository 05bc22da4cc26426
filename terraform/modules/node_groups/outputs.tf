output "node_role_arn" {
  description = "IAM role of every node."
  value       = aws_iam_role.node.arn
}

output "system_node_group" {
  description = "Name of the CPU system node group."
  value       = aws_eks_node_group.system.node_group_name
}

output "gpu_node_groups" {
  description = "GPU node groups: name -> labels, taint and capacity type (what pods must select and tolerate)."
  value = {
    for name, ng in aws_eks_node_group.gpu : name => {
      labels        = ng.labels
      taint         = "${local.gpu_taint.key}=${local.gpu_taint.value}:NoSchedule"
      capacity_type = ng.capacity_type
      max_size      = ng.scaling_config[0].max_size
    }
  }
}
