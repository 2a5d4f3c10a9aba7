// Loaded first thing in <body>: GOV.UK Frontend's "js-enabled" class, without an inline script
// (the pages' Content-Security-Policy allows scripts from this origin only).
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
