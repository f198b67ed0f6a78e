"""Feedback Workbench: the Streamlit entrypoint (router, shared sidebar, navigation)."""

from pathlib import Path

import streamlit as st

from workbench.app import ui

st.set_page_config(
    page_title="Feedback Workbench", page_icon=str(Path(__file__).parent / "assets" / "favicon.png"), layout="wide"
)
ui.sidebar()
pages = [
    st.Page(script, title=title, icon=icon, default=(i == 0)) for i, (script, title, icon, _) in enumerate(ui.PAGES)
]
st.navigation(pages).run()
