"""Reports of signed exams: PDF, DICOM SR (TID 5000 + TID 1500), SEG, key images; PACS write-back."""
