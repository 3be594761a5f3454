"""Standard-plane recognition: taxonomy, classifier, cine best-frame choice, training, evaluation."""
