owner     = "platform"
consumers = ["platform", "data-team"]
