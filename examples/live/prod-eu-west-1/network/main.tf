# The environment's VPC. platform and data read its outputs through
# terraform_remote_state (key prod/eu-west-1/network.tfstate).

module "vpc" {
  source = "../../../modules/vpc"

  name = var.env
  cidr = var.vpc_cidr
  azs  = var.azs
}
