output "role_arns" {
  description = "IRSA role ARN per workload (annotate the matching service account with it)."
  value = {
    pipelines          = module.pipelines.role_arn
    predictor          = module.predictor.role_arn
    mlflow             = module.mlflow.role_arn
    cluster_autoscaler = module.cluster_autoscaler.role_arn
    ebs_csi            = module.ebs_csi.role_arn
  }
}

output "service_accounts" {
  description = "namespace/name each role is scoped to."
  value = {
    pipelines          = module.pipelines.service_account
    predictor          = module.predictor.service_account
    mlflow             = module.mlflow.service_account
    cluster_autoscaler = module.cluster_autoscaler.service_account
    ebs_csi            = module.ebs_csi.service_account
  }
}
