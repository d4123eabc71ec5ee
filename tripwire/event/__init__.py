"""Building events: exceptions, frames, source context, locals and the bounded serializer."""
