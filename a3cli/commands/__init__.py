"""One module per part of the assignment; each registers its commands on `a3cli.app.app`."""
