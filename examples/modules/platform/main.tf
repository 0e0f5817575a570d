# The shared application platform of one environment: a security group in the
# environment's VPC, the role the app runs as, and its artifact bucket (through
# the app-bucket module: a local module nested in a local module).

resource "aws_security_group" "app" {
  name        = "${var.env}-app"
  description = "App servers of ${var.env}"
  vpc_id      = var.vpc_id

  ingress {
    description = "HTTPS from inside the VPC"
    from_port   = var.app_port
    to_port     = var.app_port
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "Anywhere"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = {
    Name = "${var.env}-app"
  }
}

module "artifacts" {
  source = "../app-bucket"

  name = "acme-${var.env}-app-artifacts"
  tags = { Purpose = "artifacts" }
}

resource "aws_iam_role" "app" {
  name = "${var.env}-app"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "artifacts" {
  name = "artifacts"
  role = aws_iam_role.app.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
      Resource = [module.artifacts.bucket_arn, "${module.artifacts.bucket_arn}/*"]
    }]
  })
}
