# Least-privilege roles for the workloads, each trusted only by its own service account (modules/irsa).
#   pipelines: read/write datasets and artifacts, read inference logs (drift, retraining)
#   predictor: read model artifacts, append inference logs; nothing else
#   mlflow:    read/write/delete artifacts (run and model-version artifacts, garbage collection)
data "aws_partition" "current" {}

locals {
  datasets  = var.bucket_arns["datasets"]
  artifacts = var.bucket_arns["artifacts"]
  logs      = var.bucket_arns["inference-logs"]
}

data "aws_iam_policy_document" "pipelines" {
  statement {
    sid       = "ListPlatformBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.datasets, local.artifacts, local.logs]
  }
  statement {
    sid       = "ReadWriteDatasetsAndArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${local.datasets}/*", "${local.artifacts}/*"]
  }
  statement {
    sid       = "ReadInferenceLogs"
    actions   = ["s3:GetObject"]
    resources = ["${local.logs}/*"]
  }
  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "predictor" {
  statement {
    sid       = "ListModelAndLogBuckets"
    actions   = ["s3:ListBucket"]
    resources = concat([local.artifacts, local.logs], var.extra_model_bucket_arns)
  }
  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = [for b in concat([local.artifacts], var.extra_model_bucket_arns) : "${b}/*"]
  }
  statement {
    sid       = "AppendInferenceLogs"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${local.logs}/*"]
  }
  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "mlflow" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.artifacts]
  }
  statement {
    sid       = "ManageArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.artifacts}/*"]
  }
  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "cluster_autoscaler" {
  #checkov:skip=CKV_AWS_356:Describe*/Get* calls of autoscaling, EC2 and EKS do not support resource-level permissions; every write action below is conditioned on this cluster's ASG tag.
  statement {
    sid = "DiscoverNodeGroups"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
      "eks:DescribeNodegroup",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "ScaleOnlyThisClustersGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}"
      values   = ["owned"]
    }
  }
}

module "pipelines" {
  source            = "../irsa"
  name              = "${var.name_prefix}-pipelines"
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer       = var.oidc_issuer
  namespace         = var.service_accounts.pipelines.namespace
  service_account   = var.service_accounts.pipelines.name
  policy_json       = data.aws_iam_policy_document.pipelines.json
  tags              = var.tags
}

module "predictor" {
  source            = "../irsa"
  name              = "${var.name_prefix}-predictor"
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer       = var.oidc_issuer
  namespace         = var.service_accounts.predictor.namespace
  service_account   = var.service_accounts.predictor.name
  policy_json       = data.aws_iam_policy_document.predictor.json
  tags              = var.tags
}

module "mlflow" {
  source            = "../irsa"
  name              = "${var.name_prefix}-mlflow"
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer       = var.oidc_issuer
  namespace         = var.service_accounts.mlflow.namespace
  service_account   = var.service_accounts.mlflow.name
  policy_json       = data.aws_iam_policy_document.mlflow.json
  tags              = var.tags
}

module "cluster_autoscaler" {
  source            = "../irsa"
  name              = "${var.name_prefix}-cluster-autoscaler"
  oidc_provider_arn = var.oidc_provider_arn
  oidc_issuer       = var.oidc_issuer
  namespace         = var.service_accounts.cluster_autoscaler.namespace
  service_account   = var.service_accounts.cluster_autoscaler.name
  policy_json       = data.aws_iam_policy_document.cluster_autoscaler.json
  tags              = var.tags
}

module "ebs_csi" {
  source              = "../irsa"
  name                = "${var.name_prefix}-ebs-csi"
  oidc_provider_arn   = var.oidc_provider_arn
  oidc_issuer         = var.oidc_issuer
  namespace           = var.service_accounts.ebs_csi.namespace
  service_account     = var.service_accounts.ebs_csi.name
  managed_policy_arns = ["arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
  tags                = var.tags
}
