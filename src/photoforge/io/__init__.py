"""Reading captures and writing deliverables: photos, video, frame names, encoders, asset writers."""
