"""The shop owner's report: a month, a campaign or any period, as HTML (and PDF), from the live policy's backtest."""
