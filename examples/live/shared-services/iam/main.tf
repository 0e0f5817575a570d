# Roles in the shared-services account: one deploy role per environment
# account, each allowed to use the Terraform state bucket and lock table.
# State key: shared-services/global/iam.tfstate (no region suffix => "global").

resource "aws_iam_role" "deploy" {
  for_each = var.deploy_accounts

  name = "deploy-${each.key}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${each.value}:root" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = {
    TargetEnvironment = each.key
  }
}

resource "aws_iam_policy" "state_access" {
  name        = "terraform-state-access"
  description = "Read and write Terraform state and take the lock"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = "arn:aws:s3:::${var.state_bucket}"
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = "arn:aws:s3:::${var.state_bucket}/*"
      },
      {
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
        Resource = "arn:aws:dynamodb:*:*:table/${var.lock_table}"
      },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "deploy_state" {
  for_each = aws_iam_role.deploy

  role       = each.value.name
  policy_arn = aws_iam_policy.state_access.arn
}
