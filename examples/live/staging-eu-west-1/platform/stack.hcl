owner     = "platform"
consumers = ["data-team"]
