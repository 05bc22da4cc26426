output "repository_urls" {
  description = "Repository URLs by name (push with an immutable tag, e.g. the git commit)."
  value       = { for name, r in aws_ecr_repository.this : name => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARNs by name."
  value       = { for name, r in aws_ecr_repository.this : name => r.arn }
}
