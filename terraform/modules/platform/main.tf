# The whole aidetect platform for one environment: KMS, VPC, EKS with CPU and GPU node groups, buckets,
# registries, PostgreSQL and the IRSA roles. envs/<name> only chooses sizes and the state backend.
data "aws_caller_identity" "current" {}

locals {
  name = "${var.project}-${var.environment}"
  tags = merge(var.tags, {
    "aidetect.io/environment" = var.environment
    "aidetect.io/managed-by"  = "terraform"
  })
}

module "kms" {
  source      = "../kms"
  name        = local.name
  description = "aidetect ${var.environment}: EKS secrets, S3, RDS, ECR and log encryption"
  tags        = local.tags
}

module "network" {
  source               = "../network"
  name                 = local.name
  cluster_name         = local.name
  vpc_cidr             = var.network.vpc_cidr
  availability_zones   = var.network.availability_zones
  private_subnet_cidrs = var.network.private_subnet_cidrs
  public_subnet_cidrs  = var.network.public_subnet_cidrs
  single_nat_gateway   = var.network.single_nat_gateway
  kms_key_arn          = module.kms.key_arn
  tags                 = local.tags
}

module "cluster" {
  source                 = "../cluster"
  name                   = local.name
  kubernetes_version     = var.kubernetes_version
  vpc_id                 = module.network.vpc_id
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.cluster_endpoint_public_access
  public_access_cidrs    = var.cluster_public_access_cidrs
  admin_principal_arns   = var.cluster_admin_principal_arns
  addon_versions         = var.eks_addon_versions
  kms_key_arn            = module.kms.key_arn
  tags                   = local.tags
}

module "node_groups" {
  source             = "../node_groups"
  cluster_name       = module.cluster.name
  kubernetes_version = var.kubernetes_version
  subnet_ids         = module.network.private_subnet_ids
  system_group       = var.system_node_group
  gpu_groups         = var.gpu_node_groups
  tags               = local.tags
}

# Private-only API endpoint: the operator reaches it through an SSM port forward on this host.
module "bastion" {
  source                    = "../bastion"
  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_id                 = module.network.private_subnet_ids[0]
  cluster_security_group_id = module.cluster.cluster_security_group_id
  tags                      = local.tags
}

module "serving_endpoint" {
  source          = "../serving_endpoint"
  hostname        = var.serving_hostname
  route53_zone_id = var.route53_zone_id
  tags            = local.tags
}

module "storage" {
  source                        = "../storage"
  name_prefix                   = "${local.name}-${data.aws_caller_identity.current.account_id}"
  kms_key_arn                   = module.kms.key_arn
  inference_logs_retention_days = var.inference_logs_retention_days
  tags                          = local.tags
}

module "ecr" {
  source       = "../ecr"
  repositories = var.ecr_repositories
  kms_key_arn  = module.kms.key_arn
  tags         = local.tags
}

module "database" {
  source                    = "../database"
  identifier                = "${local.name}-metadata"
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  allowed_security_groups   = { eks-cluster = module.cluster.cluster_security_group_id }
  engine_version            = var.database.engine_version
  instance_class            = var.database.instance_class
  allocated_storage_gib     = var.database.allocated_storage_gib
  max_allocated_storage_gib = var.database.max_allocated_storage_gib
  multi_az                  = var.database.multi_az
  backup_retention_days     = var.database.backup_retention_days
  deletion_protection       = var.database.deletion_protection
  kms_key_arn               = module.kms.key_arn
  tags                      = local.tags
}

module "iam" {
  source                  = "../platform_iam"
  name_prefix             = local.name
  cluster_name            = local.name
  oidc_provider_arn       = module.cluster.oidc_provider_arn
  oidc_issuer             = module.cluster.oidc_issuer
  bucket_arns             = module.storage.bucket_arns
  extra_model_bucket_arns = var.extra_model_bucket_arns
  kms_key_arn             = module.kms.key_arn
  service_accounts = {
    pipelines          = { namespace = var.namespaces.pipelines, name = "pipeline-runner" }
    predictor          = { namespace = var.namespaces.serving, name = "aidetect-predictor" }
    mlflow             = { namespace = var.namespaces.mlflow, name = "mlflow" }
    monitoring         = { namespace = var.namespaces.serving, name = "aidetect-monitoring" }
    cluster_autoscaler = { namespace = "kube-system", name = "cluster-autoscaler" }
    ebs_csi            = { namespace = "kube-system", name = "ebs-csi-controller-sa" }
  }
  tags = local.tags
}

# Add-ons whose pods need nodes: created once the node groups exist, or they never become ACTIVE.
resource "aws_eks_addon" "after_nodes" {
  for_each                    = { "coredns" = null, "aws-ebs-csi-driver" = module.iam.role_arns["ebs_csi"] }
  cluster_name                = module.cluster.name
  addon_name                  = each.key
  addon_version               = lookup(var.eks_addon_versions, each.key, null)
  service_account_role_arn    = each.value
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "PRESERVE"
  tags                        = local.tags

  depends_on = [module.node_groups]
}
