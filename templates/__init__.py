"""Reply templates, `<reply>/subject.txt, body.txt, body.html`, shipped as package data."""
