"""Golden integer model: numpy execution of the IR with integers only in the datapath."""
