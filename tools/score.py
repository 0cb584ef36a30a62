"""Score a trained model: `python tools/score.py --model M.keras --data data/openmoji --out scores.json`.

Thin command-line wrapper; the logic lives in keras_scft.scoring (same as `keras-scft score`).
"""

from keras_scft.scoring.cli import score_command

if __name__ == "__main__":
    score_command()
