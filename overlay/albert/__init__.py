"""Lets upstream's `from albert import X` find the modules beside this folder.

Upstream ALBERT is written to be imported as the package `albert`; this tree's
scripts run directly (`python run_pretraining.py`), with this tree on sys.path
rather than its parent, so the package `albert` is this folder, whose search
path is the tree itself.
"""
import os

__path__ = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
