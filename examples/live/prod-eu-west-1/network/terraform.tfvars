env      = "prod"
vpc_cidr = "10.10.0.0/16"
azs      = ["eu-west-1a", "eu-west-1b"]
