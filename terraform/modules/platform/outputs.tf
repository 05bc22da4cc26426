# Everything Ansible needs; ansible/tf_outputs.yml turns `terraform output -json` into group_vars.
output "ansible" {
  description = "Inputs of the Ansible add-on install, one object (see ansible/tf_outputs.yml)."
  value = {
    environment       = var.environment
    aws_region        = split(":", module.cluster.arn)[3]
    aws_account_id    = data.aws_caller_identity.current.account_id
    cluster_name      = module.cluster.name
    cluster_endpoint  = module.cluster.endpoint
    cluster_version   = module.cluster.kubernetes_version
    kms_key_arn       = module.kms.key_arn
    buckets           = module.storage.bucket_names
    ecr_repositories  = module.ecr.repository_urls
    irsa_role_arns    = module.iam.role_arns
    service_accounts  = module.iam.service_accounts
    gpu_node_groups   = module.node_groups.gpu_node_groups
    database_host     = module.database.address
    database_port     = module.database.port
    database_username = module.database.master_username
    database_secret   = module.database.master_user_secret_arn
    serving_hostname  = module.serving_endpoint.hostname
    route53_zone_id   = module.serving_endpoint.route53_zone_id
    gateway_cert_arn  = module.serving_endpoint.certificate_arn
  }
}

output "bastion_instance_id" {
  description = "SSM target for port forwarding to the private EKS API endpoint (docs/runbook.md)."
  value       = module.bastion.instance_id
}
