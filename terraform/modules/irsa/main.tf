# One IAM role per Kubernetes service account: the trust policy pins both the audience and the exact
# system:serviceaccount:<namespace>:<name> subject, so no other pod can assume it.
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  tags                 = merge(var.tags, { "aidetect.io/service-account" = "${var.namespace}/${var.service_account}" })
}

resource "aws_iam_role_policy" "this" {
  # A plan-time flag, not `policy_json == null`: the JSON names bucket and key ARNs that exist only after
  # apply, and count must be known at plan.
  count  = var.attach_inline_policy ? 1 : 0
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

resource "aws_iam_role_policy_attachment" "managed" {
  for_each   = toset(var.managed_policy_arns)
  role       = aws_iam_role.this.name
  policy_arn = each.value
}
