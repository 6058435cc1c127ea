"""The web app (Gradio only): one module per tab; everything else is done by backend/."""
