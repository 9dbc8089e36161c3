from flexnet import create_app

app = create_app()
