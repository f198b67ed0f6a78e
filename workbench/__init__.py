"""Feedback Workbench: drift, A/B and fairness analysis of a production model's feedback loop."""

__version__ = "0.1.0"
