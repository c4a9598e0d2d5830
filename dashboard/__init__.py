"""The Streamlit dashboard: thin pages over slo, store, rollout and reports."""
