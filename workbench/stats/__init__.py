"""Pure statistics on small aggregates, one module per family (drift, abtest, fairness, …).

Nothing here imports Streamlit, Ibis or the store: inputs are counts, sums and histograms,
outputs are frozen result dataclasses, so each formula is testable against a reference.
"""
