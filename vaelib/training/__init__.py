"""Training: one loop skeleton (`loop`) under the VAE trainer (`vae`, with `resume`, `weights`, `precision` and
`distributed`) and the attribute classifiers' training (`classifier`). Nothing here knows a run folder."""
