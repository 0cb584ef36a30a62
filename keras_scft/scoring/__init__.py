"""Scoring a trained colorizer: the evaluation tasks of the results table and the score CLI.

``tasks``: self-reference PSNR/SSIM/LPIPS, cross-reference FID/KID, attention correspondence,
SPair-71k SC-PSNR; ``evalset``: the evaluation images and self-augmented examples; ``report``:
the scores JSON and table; ``cli``: ``score_command`` (``keras-scft score``, ``tools/score.py``).
"""
