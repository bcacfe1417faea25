"""Faces in photos: MTCNN's detection procedure, the face crops every database and `predict`
share, and the annotated copies. Imports the models only."""
