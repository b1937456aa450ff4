print("callwindow")
