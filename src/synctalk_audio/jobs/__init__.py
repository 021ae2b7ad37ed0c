"""Jobs over many inputs: planning, the job record, and the engines that run them."""
