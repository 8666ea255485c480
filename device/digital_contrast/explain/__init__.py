"""Explainability and uncertainty of a synthetic image: test-time-augmentation uncertainty on
every job, Captum attribution on request, and the maps' outputs (DICOM, PNG, NIfTI)."""
