from matchday.cli import app

app(prog_name="matchday")
