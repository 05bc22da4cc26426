output "role_arns" {
  description = "IRSA role ARN per workload (annotate the matching service account with it)."
  value       = { for k, m in module.role : k => m.role_arn }
}

output "service_accounts" {
  description = "namespace/name each role is scoped to."
  value       = { for k, m in module.role : k => m.service_account }
}
