# The data layer of prod: an orders table the platform's app role may use, and
# SSM parameters that publish where things are. Reads network and platform
# through hand-written remote state.

data "terraform_remote_state" "network" {
  backend = "s3"
  config = {
    bucket = "acme-tfstate"
    key    = "prod/eu-west-1/network.tfstate"
    region = "eu-west-1"
  }
}

data "terraform_remote_state" "platform" {
  backend = "s3"
  config = {
    bucket = "acme-tfstate"
    key    = "prod/eu-west-1/platform.tfstate"
    region = "eu-west-1"
  }
}

module "orders" {
  source = "../../../modules/table"

  name      = "${var.env}-orders"
  hash_key  = "order_id"
  range_key = "created_at"
}

resource "aws_iam_role_policy" "app_orders" {
  name = "orders-table"
  role = data.terraform_remote_state.platform.outputs.app_role_name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
      Resource = module.orders.arn
    }]
  })
}

resource "aws_ssm_parameter" "orders_table" {
  name           = "/${var.env}/data/orders-table"
  type           = "String"
  insecure_value = module.orders.name
}

resource "aws_ssm_parameter" "network" {
  name = "/${var.env}/data/network"
  type = "String"
  insecure_value = jsonencode({
    vpc_id            = data.terraform_remote_state.network.outputs.vpc_id
    subnet_ids        = data.terraform_remote_state.network.outputs.subnet_ids
    security_group_id = data.terraform_remote_state.platform.outputs.security_group_id
    artifacts_bucket  = data.terraform_remote_state.platform.outputs.artifacts_bucket
  })
}

resource "terraform_data" "schema" {
  input = var.schema_version
}
