"""Order health: fulfilment timelines, health checks as data, the sweeper that finds stuck orders."""
