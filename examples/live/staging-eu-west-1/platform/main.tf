# The application platform of staging: reads the VPC from network and the deploy
# role from shared-services/iam, both through hand-written remote state.

data "terraform_remote_state" "network" {
  backend = "s3"
  config = {
    bucket = "acme-tfstate"
    key    = "staging/eu-west-1/network.tfstate"
    region = "eu-west-1"
  }
}

data "terraform_remote_state" "iam" {
  backend = "s3"
  config = {
    bucket = "acme-tfstate"
    key    = "shared-services/global/iam.tfstate"
    region = "eu-west-1"
  }
}

module "platform" {
  source = "../../../modules/platform"

  env      = var.env
  vpc_id   = data.terraform_remote_state.network.outputs.vpc_id
  vpc_cidr = data.terraform_remote_state.network.outputs.vpc_cidr
}

resource "aws_ssm_parameter" "deploy_role" {
  name        = "/${var.env}/platform/deploy-role-arn"
  description = "Role CI assumes to deploy ${var.env}"
  type        = "String"
  # insecure_value: a plain, non-sensitive String (value would be marked sensitive).
  insecure_value = data.terraform_remote_state.iam.outputs.deploy_role_arns[var.env]
}
