module "platform" {
  source = "../../modules/platform"

  environment                    = var.environment
  network                        = var.network
  kubernetes_version             = var.kubernetes_version
  cluster_endpoint_public_access = var.cluster_endpoint_public_access
  cluster_public_access_cidrs    = var.cluster_public_access_cidrs
  cluster_admin_principal_arns   = var.cluster_admin_principal_arns
  eks_addon_versions             = var.eks_addon_versions
  system_node_group              = var.system_node_group
  gpu_node_groups                = var.gpu_node_groups
  database                       = var.database
  inference_logs_retention_days  = var.inference_logs_retention_days
  extra_model_bucket_arns        = var.extra_model_bucket_arns
  namespaces                     = var.namespaces
  serving_hostname               = var.serving_hostname
  route53_zone_id                = var.route53_zone_id
}
