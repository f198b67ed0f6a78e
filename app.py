"""Feedback Workbench: the Streamlit entrypoint (router, shared sidebar, navigation)."""

from pathlib import Path

import streamlit as st

from workbench.app import ui

st.set_page_config(
    page_title="Feedback Workbench", page_icon=str(Path(__file__).parent / "assets" / "favicon.png"), layout="wide"
)
pages = [
    st.Page(script, title=title, icon=icon, default=(i == 0)) for i, (script, title, icon, _) in enumerate(ui.PAGES)
]
# Navigation first, then the shared sidebar's widgets: with the widgets first, Streamlit 1.67 lost the first click on
# one of them in a session opened at "/" (that rerun counts as a page change; the browser test clicks it once).
navigation = st.navigation(pages)
ui.sidebar()
navigation.run()
