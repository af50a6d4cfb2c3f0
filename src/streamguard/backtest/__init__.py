"""Backtests: what a rule catalog would have done to past traffic, beside the live one."""
