"""Segmentation of the structures biometry and the Salomon 2006 criteria need beyond the skull.

One small multi-label U-Net (:mod:`inference.structures.model`) trained on the synthetic phantom
only (:mod:`inference.structures.train`): abdomen to the skin line, stomach bubble, umbilical vein,
kidneys, spine, ribs, femoral diaphysis, thalami, cavum septi pellucidi, cerebellum. Its results are
**not validated on real images**: no labelled real abdomen, femur or intracranial data exists beside
the project. :class:`inference.structures.predict.StructurePredictor` loads the weights once.
"""
