# Least-privilege roles for the workloads, each trusted only by its own service account (modules/irsa).
#   pipelines: read/write datasets and artifacts, read inference logs (drift, retraining)
#   predictor: read model artifacts, append inference logs, keep and prune captured images; nothing else
#   mlflow:    read/write/delete artifacts (run and model-version artifacts, garbage collection)
#   monitoring: read inference logs and artifacts (reference profiles), write only under artifacts/monitoring/
data "aws_partition" "current" {}

locals {
  datasets  = var.bucket_arns["datasets"]
  artifacts = var.bucket_arns["artifacts"]
  logs      = var.bucket_arns["inference-logs"]
}

# Every workload that reads or writes the buckets needs the bucket KMS key; nothing else.
data "aws_iam_policy_document" "use_bucket_key" {
  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "pipelines" {
  source_policy_documents = [data.aws_iam_policy_document.use_bucket_key.json]

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
}

data "aws_iam_policy_document" "predictor" {
  source_policy_documents = [data.aws_iam_policy_document.use_bucket_key.json]

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
    # the capture store (issue 15): a kept image already there is not written again, and retention
    # prunes old ones; only under captured/, never the logs themselves
    sid       = "ManageCapturedImages"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = ["${local.logs}/captured/*"]
  }
}

data "aws_iam_policy_document" "mlflow" {
  source_policy_documents = [data.aws_iam_policy_document.use_bucket_key.json]

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
}

data "aws_iam_policy_document" "monitoring" {
  source_policy_documents = [data.aws_iam_policy_document.use_bucket_key.json]

  statement {
    sid       = "ListLogsAndArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [local.logs, local.artifacts]
  }
  statement {
    sid       = "ReadLogsAndReferenceProfiles"
    actions   = ["s3:GetObject"]
    resources = ["${local.logs}/*", "${local.artifacts}/*"]
  }
  statement {
    sid       = "WriteDriftReportsAndRetrainState"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${local.artifacts}/monitoring/*"]
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

locals {
  roles = {
    pipelines          = { policy_json = data.aws_iam_policy_document.pipelines.json, inline = true, managed_policy_arns = [] }
    predictor          = { policy_json = data.aws_iam_policy_document.predictor.json, inline = true, managed_policy_arns = [] }
    mlflow             = { policy_json = data.aws_iam_policy_document.mlflow.json, inline = true, managed_policy_arns = [] }
    monitoring         = { policy_json = data.aws_iam_policy_document.monitoring.json, inline = true, managed_policy_arns = [] }
    cluster_autoscaler = { policy_json = data.aws_iam_policy_document.cluster_autoscaler.json, inline = true, managed_policy_arns = [] }
    ebs_csi = {
      policy_json         = null
      inline              = false
      managed_policy_arns = ["arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    }
  }
}

module "role" {
  for_each             = local.roles
  source               = "../irsa"
  name                 = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  oidc_provider_arn    = var.oidc_provider_arn
  oidc_issuer          = var.oidc_issuer
  namespace            = var.service_accounts[each.key].namespace
  service_account      = var.service_accounts[each.key].name
  policy_json          = each.value.policy_json
  attach_inline_policy = each.value.inline
  managed_policy_arns  = each.value.managed_policy_arns
  tags                 = var.tags
}
