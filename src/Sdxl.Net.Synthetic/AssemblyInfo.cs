using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Sdxl.Net.Tests")]
