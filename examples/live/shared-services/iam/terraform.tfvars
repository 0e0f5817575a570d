deploy_accounts = {
  prod    = "222222222222"
  staging = "333333333333"
}

state_bucket = "acme-tfstate"
lock_table   = "acme-tfstate-locks"
