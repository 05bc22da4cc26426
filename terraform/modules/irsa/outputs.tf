output "role_arn" {
  description = "ARN to annotate the service account with (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.this.arn
}

output "service_account" {
  description = "The namespace/name the role is scoped to."
  value       = "${var.namespace}/${var.service_account}"
}
